"""The reading core: decode (decode.py) -> the pipeline's stages -> the model -> the decision.

- params.py: every threshold, in one frozen object, with what it was measured on
- stages.py: the stages, small pure functions over arrays
- pipeline.py: the stages run top to bottom; the 28x28 inputs a frame gives
- decision.py: the one rule from model outputs to an answer (and the second reading)
- trace.py: what each stage decided, and its image on request
- files.py: image files and folders read one by one, their answers formatted
"""
