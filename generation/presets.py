"""Style presets for videos: each adds words to the person's prompt."""

from __future__ import annotations

STYLES: dict[str, tuple[str, str]] = {
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
}

STYLE_CHOICES = [(key, label) for key, (label, _) in STYLES.items()]


def styled_prompt(prompt: str, style: str) -> str:
    suffix = STYLES.get(style, ("", ""))[1]
    return f"{prompt}. {suffix}" if suffix else prompt
