"""Help with the prompt: style presets that add words to it, example prompts, "Surprise me"."""

from __future__ import annotations

import random

# Per kind of job: preset key → (label, the words it adds to the person's prompt).
STYLES_BY_KIND: dict[str, dict[str, tuple[str, str]]] = {
    "image": {
        "": ("No preset", ""),
        "photo": ("Photo", "photorealistic, natural light, 50mm lens, fine detail"),
        "cinematic": ("Cinematic", "cinematic still, dramatic lighting, anamorphic lens, film grain"),
        "illustration": ("Illustration", "digital illustration, clean lines, rich flat colours"),
        "watercolor": ("Watercolour", "watercolour painting, soft washes, paper texture"),
        "anime": ("Anime", "anime style, cel shading, vibrant colours"),
        "3d": ("3D render", "3D render, soft global illumination, clay materials"),
    },
    "image_edit": {
        "": ("No preset", ""),
        "enhance": ("Enhance", "keep the subject and composition, sharper detail, balanced colours"),
        "golden": ("Golden hour", "warm golden hour light, long soft shadows"),
        "film": ("Film look", "analog film look, gentle grain, muted colours"),
        "bw": ("Black and white", "black and white photograph, rich contrast"),
        "painting": ("Oil painting", "turn it into an oil painting with visible brush strokes"),
    },
    "video": {
        "": ("No preset", ""),
        "cinematic": (
            "Cinematic",
            "cinematic lighting, anamorphic lens, shallow depth of field, film grain, slow camera move",
        ),
        "anime": ("Anime", "anime style, cel shading, vibrant colours, expressive motion"),
        "product": (
            "Product shot",
            "clean studio product shot, seamless background, soft shadows, slow turntable rotation",
        ),
        "documentary": ("Documentary", "handheld documentary footage, natural light, realistic detail"),
        "dreamy": ("Dreamy", "soft focus, pastel colours, gentle glow, floating slow motion"),
    },
}

# An animated photo moves as a video does: the same presets.
STYLES_BY_KIND["animate"] = STYLES_BY_KIND["video"]

# The video presets, under the names they had before images and edits got theirs.
STYLES = STYLES_BY_KIND["video"]
STYLE_CHOICES = [(key, label) for key, (label, _) in STYLES.items()]


def styles_for(kind: str) -> dict[str, tuple[str, str]]:
    return STYLES_BY_KIND.get(kind, {"": ("No preset", "")})


def style_choices(kind: str) -> list[tuple[str, str]]:
    return [(key, label) for key, (label, _) in styles_for(kind).items()]


def styled_prompt(prompt: str, style: str, kind: str = "video") -> str:
    suffix = styles_for(kind).get(style, ("", ""))[1]
    return f"{prompt}. {suffix}" if suffix else prompt


# Shown on an empty create form, one click away from a first result. Keys: the create pages.
EXAMPLE_PROMPTS: dict[str, list[str]] = {
    "image": [
        "A lighthouse on a cliff in a storm, oil painting",
        "A cosy reading nook in a treehouse, morning light",
        "A red fox in fresh snow, close-up portrait",
        "A neon-lit noodle bar on a rainy street at night",
    ],
    "edit": [
        "Make it golden hour",
        "Turn the sky into a starry night",
        "Make it look like a watercolour painting",
        "Remove the people in the background",
    ],
    "batch": [
        "Warmer light, a little more contrast",
        "Make them black and white",
        "A clean white studio background",
    ],
    "video": [
        "Waves rolling onto a beach at sunset, slow pan",
        "A paper boat drifting down a rainy street",
        "Steam rising from a cup of coffee, close-up",
    ],
    "animate": [
        "A slow push-in, the leaves stirring in the wind",
        "The clouds drift by and the water ripples",
        "She turns to the camera and smiles",
    ],
}

# "Surprise me" puts these together: a few hundred prompts from three short lists.
SURPRISE_SUBJECTS = [
    "a lighthouse keeper's cat",
    "a tiny robot gardener",
    "an old tram",
    "a hot-air balloon",
    "a sleeping dragon",
    "a bicycle made of glass",
    "a fox in a scarf",
    "a floating island",
    "a jazz band of owls",
    "a greenhouse full of clocks",
]
SURPRISE_SETTINGS = [
    "in a snowy mountain village",
    "on a quiet street after rain",
    "under the northern lights",
    "in a sunlit library",
    "at the bottom of the sea",
    "on the rooftops of an old city",
    "in a field of lavender",
    "on a distant moon",
]
SURPRISE_MOODS = [
    "soft morning light",
    "golden hour",
    "moody and cinematic",
    "bright and playful",
    "misty and calm",
    "vivid colours",
]
SURPRISE_MOTIONS = [
    "A slow push-in as the light changes",
    "A gentle pan from left to right, the wind picking up",
    "Everything still but the drifting clouds",
    "A slow orbit around the subject",
]
SURPRISE_EDITS = [
    "Make it look like a summer evening",
    "Add gentle falling snow",
    "Turn it into a pencil sketch",
    "Give it a warm vintage film look",
    "Make the colours pop",
    "Turn day into a moonlit night",
]


def surprise_prompt(kind: str, rng: random.Random | None = None) -> str:
    """A prompt nobody typed: a subject, a place and a mood (for photo edits, a change)."""
    rng = rng or random.Random()  # noqa: S311 (a prompt idea, not a secret)
    if kind in ("edit", "batch", "image_edit"):
        return rng.choice(SURPRISE_EDITS)
    if kind == "animate":
        return rng.choice(SURPRISE_MOTIONS)
    subject, place, mood = rng.choice(SURPRISE_SUBJECTS), rng.choice(SURPRISE_SETTINGS), rng.choice(SURPRISE_MOODS)
    return f"{subject[0].upper()}{subject[1:]} {place}, {mood}"
