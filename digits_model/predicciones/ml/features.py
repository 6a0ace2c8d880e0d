"""The shape every model here reads and answers: scikit-learn's digits.

An input is 8x8 = 64 features, each an integer 0..16 (ink counted in 4x4 blocks of a 32x32
bitmap, as ``load_digits`` has them); an answer is a digit 0..9.
"""

#: Features per input (8x8 pixels, row-major).
N_FEATURES = 64
#: Each feature is an integer 0..16.
N_VALUES = 17
#: Digits 0..9.
N_CLASSES = 10
