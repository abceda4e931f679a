"""How a dataset made its images from pictures: the convention that preparing a person's picture
(``explorer.pictures.preprocess``) repeats. Each dataset names its own (``explorer.data.specs``).
Pure Python: the settings and the dataset descriptions import it without loading torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Convention:
    """How a dataset turned a picture into one of its images; ``preprocess_image`` repeats it.

    ``kind``:
    - ``"ink"``: a drawing (ink on paper): the ink is found against a local background, cropped
      to the main drawing, fitted into a ``box`` x ``box`` square keeping its aspect ratio
      (anti-aliased), then moved by whole pixels so that its centre of mass lands at
      ``centre_at`` (row, column, 0-indexed). MNIST (LeCun et al. 1998): 20x20 box, centre of mass
      at the field's centre.
    - ``"frame"``: an object photographed on a plain ground: the ground is removed, the object
      cropped to its bounding box, its longest side scaled to ``box`` and its box centred
      (Fashion-MNIST, Xiao et al. 2017: trimmed, longest side resized to 28, negated).
    - ``"photo"``: a photograph kept as it is, in colour when the dataset's images have three
      channels (else greyscale), fitted to the image's shape by ``fit``: ``"crop"`` (centre-crop
      to its aspect ratio, then resize: Frey Face, CIFAR-10, the shapes, an image folder by
      default) or ``"pad"`` (resize to fit inside, then pad with black).
    """

    kind: str  # "ink", "frame" or "photo"
    box: int  # longest side of the drawing or object after scaling, pixels
    centre_at: tuple[float, float] | None = None  # "ink": target centre of mass (row, col)
    summary: str = ""  # one line for help texts: what is done to a picture
    fit: str = "crop"  # "photo": "crop" or "pad"
