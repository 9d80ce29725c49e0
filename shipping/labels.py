"""Rendering a shipping label: the slow, CPU-bound job the work queue spreads across workers."""
import hashlib
import io

from PIL import Image, ImageDraw, ImageFont

LABEL_SIZE = (800, 1200)  # a 4x6 inch label at 200 dpi


def label_png(*, tracking_number: str, order_number: str, recipient: list[str], country: str) -> bytes:
    """A PNG label: sender, recipient, a barcode drawn from the tracking number, and the order."""
    image = Image.new("L", LABEL_SIZE, color=255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=40)
    small = ImageFont.load_default(size=28)
    draw.rectangle([10, 10, LABEL_SIZE[0] - 10, LABEL_SIZE[1] - 10], outline=0, width=6)
    draw.text((40, 40), "FROM: Eventshop, 1 Queue Street, Berlin", font=small, fill=0)
    draw.line([(10, 100), (LABEL_SIZE[0] - 10, 100)], fill=0, width=4)
    draw.text((40, 130), "SHIP TO:", font=small, fill=0)
    for row, text in enumerate(recipient):
        draw.text((60, 180 + row * 55), text, font=font, fill=0)
    draw.text((LABEL_SIZE[0] - 150, 130), country, font=ImageFont.load_default(size=90), fill=0)
    draw.line([(10, 480), (LABEL_SIZE[0] - 10, 480)], fill=0, width=4)
    _barcode(draw, tracking_number, top=520, height=360)
    draw.text((60, 900), tracking_number, font=font, fill=0)
    draw.text((60, 1000), f"Order {order_number}", font=small, fill=0)
    output = io.BytesIO()
    image.save(output, format="PNG", optimize=True)
    return output.getvalue()


def _barcode(draw: ImageDraw.ImageDraw, text: str, *, top: int, height: int) -> None:
    # Not a real symbology: stripes derived from the tracking number, enough to look and scan like one.
    bits = "".join(f"{byte:08b}" for byte in hashlib.sha256(text.encode()).digest())
    x = 60
    for bit in bits[:220]:
        width = 5 if bit == "1" else 2
        draw.rectangle([x, top, x + width - 1, top + height], fill=0)
        x += width + 2
