"""Face aligners: image + landmarks -> the chip an embedder takes."""
