"""The app's favicon, drawn with Pillow (a Streamlit dependency) so that no icon is fetched
from an outside host: a white mortarboard-like mark on the theme's blue."""

from __future__ import annotations

from functools import lru_cache

from PIL import Image, ImageDraw

BLUE = (37, 99, 235, 255)  # .streamlit/config.toml primaryColor


@lru_cache(maxsize=1)
def favicon() -> Image.Image:
    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((0, 0, 63, 63), radius=14, fill=BLUE)
    d.polygon([(8, 26), (32, 14), (56, 26), (32, 38)], fill="white")  # the board
    d.rectangle((20, 32, 44, 46), fill="white")  # the cap
    d.line((52, 28, 52, 44), fill="white", width=3)  # the tassel
    return img
