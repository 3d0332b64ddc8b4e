"""MNIST data: IDX files (idx.py) and the MNIST splits from a folder, the cache or a verified
download (mnist.py). The test split ships here too, for `check` on a device."""
