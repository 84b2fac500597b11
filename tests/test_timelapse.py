"""ltlib.timelapse: one frame per year, labelled, a valid GIF written atomically."""
import numpy as np
import pytest
from PIL import Image

from ltlib import io, timelapse


def _stack(years=(2000, 2001, 2002, 2003), n=20):
    """A small stack whose value is the year's index x 100 (so every frame is one flat colour), with
    one missing pixel."""
    data = np.stack([np.full((n, n), 100.0 * i, np.float32) for i in range(len(years))])
    data[:, 0, 0] = np.nan
    grid = io.Grid("EPSG:32612", io.Affine(30, 0, 400000, 0, -30, 4500000), n, n)
    return io.Stack(data, np.array(years), grid, name="NDVI", scale=0.001)


def test_one_labelled_frame_per_year_on_a_fixed_colour_range():
    import matplotlib

    s = _stack()
    framed = timelapse.frames(s, cmap="viridis", vmin=0, vmax=300, scale=3)
    assert [y for y, _ in framed] == [2000, 2001, 2002, 2003]
    for i, (year, im) in enumerate(framed):
        a = np.asarray(im)
        assert a.shape == (60 + timelapse.HEADER_PX, 60, 3)
        expected = (np.array(matplotlib.colormaps["viridis"](i / 3)[:3]) * 255).astype(np.uint8)
        assert np.abs(a[timelapse.HEADER_PX + 30, 30].astype(int) - expected).max() <= 1  # value -> colour
        assert tuple(a[timelapse.HEADER_PX + 1, 1]) == timelapse.NO_DATA_RGB  # missing pixel: grey, 3x3 px
        header = a[:timelapse.HEADER_PX]
        assert (header.sum(-1) > 600).sum() > 20  # white label text on black
    # the year label is what differs between the headers of two frames with the same colours
    h0 = np.asarray(framed[0][1])[:timelapse.HEADER_PX]
    h1 = np.asarray(framed[1][1])[:timelapse.HEADER_PX]
    diff = np.argwhere((h0 != h1).any(-1))
    assert diff.size and diff[:, 1].min() > 60 / 2  # right half: where the year is written
    with pytest.raises(ValueError, match=r"years \[1999\] are not in stack 'NDVI'"):
        timelapse.frames(s, years=[1999, 2000])


def test_write_timelapse_gif(tmp_path, monkeypatch):
    monkeypatch.setattr(timelapse, "ffmpeg_exe", lambda: None)
    s = _stack()
    out = timelapse.write_timelapse(s, None, tmp_path / "ndvi.gif", cmap="viridis", fps=5, scale=2)
    with Image.open(out.gif) as im:
        assert im.format == "GIF" and im.n_frames == 4 and im.info["duration"] == 200
        assert im.size == (40, 40 + timelapse.HEADER_PX) == out.size
        im.seek(3)
        last = np.asarray(im.convert("RGB"))
    top = np.array([253, 231, 37])  # viridis at the top of the range: the last year (2nd-98th percentile)
    assert np.abs(last[timelapse.HEADER_PX + 20, 20].astype(int) - top).max() <= 12  # 64-colour palette
    assert out.mp4 is None and "MP4 skipped: no ffmpeg" in out.note
    assert out.summary()["n_frames"] == 4 and out.years == [2000, 2001, 2002, 2003]
    assert "data:image/gif;base64," in out._repr_html_()
    with pytest.raises(ValueError, match="must end in .gif"):
        timelapse.write_timelapse(s, None, tmp_path / "ndvi.png")


def test_write_timelapse_is_atomic(tmp_path, monkeypatch):
    """A failure while writing leaves the previous GIF as it was and no temporary file."""
    monkeypatch.setattr(timelapse, "ffmpeg_exe", lambda: None)
    s = _stack()
    path = tmp_path / "ndvi.gif"
    timelapse.write_timelapse(s, None, path)
    before = path.read_bytes()

    def broken_save(self, fp, *a, **kw):
        open(fp, "wb").write(b"GIF89a truncated")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        timelapse.write_timelapse(s, None, path, fps=1)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ndvi.gif"]


@pytest.mark.skipif(timelapse.ffmpeg_exe() is None, reason="no ffmpeg on this machine")
def test_write_timelapse_mp4(tmp_path):
    out = timelapse.write_timelapse(_stack(), None, tmp_path / "ndvi.gif")
    assert out.mp4 is not None and out.mp4.stat().st_size > 0 and out.note == ""
