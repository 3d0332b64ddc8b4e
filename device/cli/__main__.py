"""`python -m mnist_edge.device.cli`: the `mnist-edge` command."""

from mnist_edge.device.cli import main

main()
