"""Input sizes of the blend CNN, torch-free so the CLI can build its options without importing torch."""

SBI_INPUT = 128  # pixels; the 256 parser crop is resized to this (files without meta["input_size"])
SBI_INPUT_RANGE = (64, 256)  # input sizes a model file may ask for (the parser crop is 256)


def is_valid_input_size(value: object) -> bool:
    """Whether a blend-model input side is usable: an int (not a bool) within ``SBI_INPUT_RANGE``."""
    lo, hi = SBI_INPUT_RANGE
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi
