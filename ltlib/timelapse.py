"""An animation of the annual composites: one call writes an animated GIF (and an MP4 when
ffmpeg is installed), as geemap's timelapse does for Earth Engine collections, but from the
local stacks.

Each frame is one year of an index on a colour range fixed over the whole record (2-98th
percentile unless given), so what brightens or darkens really changed; missing values are
grey, and a header names the index, its unit and the year.

A lazy (dask) stack, or one over ``config.TIMELAPSE_MAX_PX`` px a side, is animated from its
overview (:mod:`ltlib.overview`, NaN-aware block means of every year computed in one pass),
at most that many pixels a side; the colour range is then that of the overview.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import config, io
from . import overview as _ov

NO_DATA_RGB = (190, 190, 190)
HEADER_PX = 30
GIF_COLOURS = 64  # colours of the colour map in the GIF's palette


@dataclass
class Timelapse:
    """What :func:`write_timelapse` wrote: ``gif``, ``mp4`` (None when skipped, ``note`` says
    why), the ``years`` of the frames in order, and the frame size in pixels."""

    gif: Path
    mp4: Path | None
    years: list
    size: tuple
    note: str = ""

    def files(self) -> dict:
        """{key: path} of the files written, for :meth:`ltlib.report.Report.files_from`."""
        return {"timelapse_gif": self.gif, **({"timelapse_mp4": self.mp4} if self.mp4 else {})}

    def summary(self) -> dict:
        return {"gif": self.gif.name, "mp4": self.mp4.name if self.mp4 else None, "n_frames": len(self.years),
                "first_year": self.years[0], "last_year": self.years[-1], "note": self.note}

    def __str__(self) -> str:
        files = ", ".join(str(p) for p in (self.gif, self.mp4) if p is not None)
        return (f"timelapse of {len(self.years)} years ({self.years[0]}-{self.years[-1]}), "
                f"{self.size[0]} x {self.size[1]} px: {files}" + (f"\n{self.note}" if self.note else ""))

    def _repr_html_(self) -> str:
        import base64

        data = base64.b64encode(self.gif.read_bytes()).decode()
        return f'<img src="data:image/gif;base64,{data}" alt="{self.gif.name}"><pre>{self}</pre>'


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def frames(stack, *, cmap: str = "YlGn", vmin=None, vmax=None, scale: int | None = None, years=None):
    """The frames of a timelapse of ``stack`` (an annual :class:`~ltlib.io.Stack`).

    Parameters
    ----------
    stack : ltlib.io.Stack
    cmap : str
        Matplotlib colour map.
    vmin, vmax : float, optional
        Colour range in stored units; default the 2nd and 98th percentile of the whole stack
        (of its overview for a lazy or large stack).
    scale : int, optional
        Pixels per raster pixel (nearest neighbour); default so the image is at least 200 px (file size grows with its square).
    years : list of int, optional
        The years to show, in order (default all).

    Returns
    -------
    list of (year, PIL.Image.Image)
        RGB frames: a header with the index, unit and year above the image.
    """
    from PIL import Image, ImageDraw

    from .inspector import stack_unit
    from .maps import continuous_rgba

    years = [int(y) for y in (stack.years if years is None else years)]
    missing = sorted(set(years) - {int(y) for y in stack.years})
    if missing:
        raise ValueError(f"years {missing} are not in stack {stack.name!r} ({stack.years[0]}-{stack.years[-1]})")
    data, band = stack.data, stack.band
    if _ov.needs_overview(data, config.TIMELAPSE_MAX_PX):  # every year's overview in one read of the blocks
        data, _ = _ov.overview(data, stack.grid, config.TIMELAPSE_MAX_PX)
        stack_years = [int(y) for y in stack.years]

        def band(y):
            return data[stack_years.index(y)]

    if vmin is None or vmax is None:
        lo, hi = np.nanpercentile(data, [2, 98])
        vmin = float(lo) if vmin is None else vmin
        vmax = float(hi) if vmax is None else vmax
    h, w = data.shape[-2:]
    scale = int(scale or max(1, int(np.ceil(200 / max(h, w)))))
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    font = _font(18)
    out = []
    for year in years:
        rgba, _, _ = continuous_rgba(band(year), cmap=cmap, vmin=vmin, vmax=vmax)
        rgb = np.where(rgba[..., 3:] == 0, np.array(NO_DATA_RGB, np.uint8), rgba[..., :3])
        rgb = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
        frame = Image.new("RGB", (w * scale, h * scale + HEADER_PX), (0, 0, 0))
        frame.paste(Image.fromarray(rgb, mode="RGB"), (0, HEADER_PX))
        draw = ImageDraw.Draw(frame)
        draw.text((6, 5), f"{stack_unit(stack)}  {vmin:g}..{vmax:g}", fill=(200, 200, 200), font=_font(12))
        draw.text((w * scale - 6, 4), str(year), fill=(255, 255, 255), font=font, anchor="ra")
        out.append((year, frame))
    return out


def _palette(cmap: str, n: int = GIF_COLOURS):
    """One GIF palette for every frame: ``n`` colours of the colour map, the no-data grey and
    the header's black, white and grey (a shared small palette keeps the file small)."""
    import matplotlib
    from PIL import Image

    cols = (matplotlib.colormaps[cmap](np.linspace(0, 1, n))[:, :3] * 255).round().astype(np.uint8).tolist()
    cols += [list(NO_DATA_RGB), [0, 0, 0], [255, 255, 255], [200, 200, 200]]
    flat = [v for c in cols for v in c]
    pal = Image.new("P", (1, 1))
    pal.putpalette(flat + [0] * (768 - len(flat)))
    return pal


def ffmpeg_exe() -> str | None:
    """The ffmpeg executable (on PATH, or imageio-ffmpeg's), or None."""
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return None


def _write_mp4(exe: str, images, path: Path, fps: float):
    w, h = images[0].size
    cmd = [exe, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
           "-r", f"{fps:g}", "-i", "-", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-pix_fmt", "yuv420p",
           "-f", "mp4"]
    with io.atomic_path(path) as tmp:
        proc = subprocess.run(cmd + [str(tmp)], input=b"".join(im.tobytes() for im in images),
                              capture_output=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"ffmpeg could not write {path}: {proc.stderr.decode(errors='replace')[-500:]}")


def write_timelapse(scene, index: str | None, path, *, cmap: str = "YlGn", vmin=None, vmax=None, fps: float = 4,
                    scale: int | None = None, years=None, mp4: bool = True) -> Timelapse:
    """Write an animated GIF of the annual composites of ``index`` (and an MP4 beside it).

    Parameters
    ----------
    scene : ltlib.scene.Scene or ltlib.io.Stack
        Where the stack of ``index`` comes from (a Stack is used as it is).
    index : str
        The index to animate (ignored for a Stack).
    path : str or Path
        The GIF to write (``.gif``); the MP4 gets the same name with ``.mp4``. Written
        atomically: an interrupted run leaves the old file or none.
    cmap, vmin, vmax, scale, years
        As in :func:`frames`.
    fps : float
        Frames (years) per second.
    mp4 : bool
        Also write an MP4 when ffmpeg is available (otherwise ``note`` says it was skipped).

    Returns
    -------
    Timelapse
    """
    from .io import Stack

    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"timelapse path {path} must end in .gif")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    stack = scene if isinstance(scene, Stack) else scene.stack(index)
    framed = frames(stack, cmap=cmap, vmin=vmin, vmax=vmax, scale=scale, years=years)
    images = [im for _, im in framed]
    palette = _palette(cmap)
    gif = [im.quantize(palette=palette, dither=0) for im in images]  # 0: no dithering (Image.Dither.NONE)
    with io.atomic_path(path) as tmp:
        gif[0].save(tmp, format="GIF", save_all=True, append_images=gif[1:], duration=int(round(1000 / fps)),
                    loop=0)
    mp4_path, note = None, ""
    if mp4:
        exe = ffmpeg_exe()
        if exe is None:
            note = "MP4 skipped: no ffmpeg found (install ffmpeg or the imageio-ffmpeg package)"
        else:
            mp4_path = path.with_suffix(".mp4")
            _write_mp4(exe, images, mp4_path, fps)
    return Timelapse(path, mp4_path, [y for y, _ in framed], images[0].size, note)
