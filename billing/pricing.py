"""What things cost, in credits. Credits are whole numbers; there are no fractions of a credit."""

SIGNUP_CREDITS = 3_000

# The generation catalog copies these into each model's price; a job keeps the cost it was charged.
CREDIT_COSTS = {
    "image": 500,
    "image_edit": 1_000,
    "video_3s": 2_000,
    "video_5s": 3_000,
}

# Below this the billing page and the navigation suggest buying more: not enough for an image.
LOW_BALANCE = min(CREDIT_COSTS.values())
