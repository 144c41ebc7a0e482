"""Input sizes of the blend CNN, torch-free so the CLI can build its options without importing torch."""

SBI_INPUT = 128  # pixels; the 256 parser crop is resized to this (files without meta["input_size"])
SBI_INPUT_RANGE = (64, 256)  # input sizes a model file may ask for (the parser crop is 256)
