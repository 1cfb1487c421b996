# Reference outputs of Pillow (Debian python3-pil 9.4.0) for ImageResizeTest: run with /usr/bin/python3 in this
# folder. The inputs are made from integer formulas the test repeats; the resize modes follow AUTOMATIC1111's
# modules/images.py resize_image (LANCZOS, no upscaler).
from PIL import Image


def source(w, h):
    im = Image.new("RGB", (w, h))
    px = im.load()
    for y in range(h):
        for x in range(w):
            px[x, y] = ((x * 37 + y * 11) % 256, (x * x + 3 * y * y) % 256, (x * y * 5 + 40) % 256)
    return im


def a1111(mode, im, width, height):
    L = Image.LANCZOS
    if mode == 0:
        return im.resize((width, height), resample=L)
    ratio = width / height
    src_ratio = im.width / im.height
    if mode == 1:
        src_w = width if ratio > src_ratio else im.width * height // im.height
        src_h = height if ratio <= src_ratio else im.height * width // im.width
        resized = im.resize((src_w, src_h), resample=L)
        res = Image.new("RGB", (width, height))
        res.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
        return res
    src_w = width if ratio < src_ratio else im.width * height // im.height
    src_h = height if ratio >= src_ratio else im.height * width // im.width
    resized = im.resize((src_w, src_h), resample=L)
    res = Image.new("RGB", (width, height))
    res.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
    if ratio < src_ratio:
        fill_height = height // 2 - src_h // 2
        if fill_height > 0:
            res.paste(resized.resize((width, fill_height), box=(0, 0, width, 0)), box=(0, 0))
            res.paste(resized.resize((width, fill_height), box=(0, resized.height, width, resized.height)), box=(0, fill_height + src_h))
    elif ratio > src_ratio:
        fill_width = width // 2 - src_w // 2
        if fill_width > 0:
            res.paste(resized.resize((fill_width, height), box=(0, 0, 0, height)), box=(0, 0))
            res.paste(resized.resize((fill_width, height), box=(resized.width, 0, resized.width, height)), box=(fill_width + src_w, 0))
    return res


src = source(37, 23)
src.resize((64, 48), resample=Image.LANCZOS).save("lanczos_37x23_to_64x48.png")
src.resize((16, 11), resample=Image.LANCZOS).save("lanczos_37x23_to_16x11.png")
src.convert("L").save("grey_37x23.png")
src.convert("L").resize((24, 40), resample=Image.LANCZOS).save("lanczos_grey_37x23_to_24x40.png")
for mode in (0, 1, 2):
    a1111(mode, src, 32, 32).save(f"a1111_mode{mode}_32x32.png")
    a1111(mode, src, 24, 40).save(f"a1111_mode{mode}_24x40.png")
