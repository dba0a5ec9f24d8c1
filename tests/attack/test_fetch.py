"""fetch-faces against a real HTTP server on localhost serving archives built from the shared copy."""
import http.server
import threading
import zipfile
from functools import partial

import pytest

from attack.faces import load_faces
from attack.fetch import FetchError, fetch_faces


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def build_zip(faces_dir, path, tamper=None, prefix="orl_faces"):
    with zipfile.ZipFile(path, "w") as zf:
        for pgm in sorted(faces_dir.glob("s*/*.pgm")):
            name = f"{prefix}/{pgm.parent.name}/{pgm.name}"
            data = pgm.read_bytes()
            if name == tamper:
                data = data[:-1] + bytes([data[-1] ^ 1])
            zf.writestr(name, data)


def test_downloads_verifies_and_installs(faces_dir, served, tmp_path):
    root, url = served
    build_zip(faces_dir, root / "att_faces.zip")
    dest = tmp_path / "installed" / "att_faces"
    assert fetch_faces(f"{url}/att_faces.zip", dest) == dest
    assert load_faces(dest).images.shape == (400, 112, 92)
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".fetch")]
    (root / "att_faces.zip").unlink()  # already installed and verified: no download needed
    assert fetch_faces(f"{url}/att_faces.zip", dest) == dest


def test_a_changed_pixel_is_caught_and_nothing_installed(faces_dir, served, tmp_path):
    root, url = served
    build_zip(faces_dir, root / "bad.zip", tamper="orl_faces/s17/4.pgm")
    dest = tmp_path / "att_faces"
    with pytest.raises(FetchError, match="differ from the AT&T faces"):
        fetch_faces(f"{url}/bad.zip", dest)
    assert not dest.exists() and not list(tmp_path.glob(".fetch*"))


def test_incomplete_archive_and_non_archive_and_404(faces_dir, served, tmp_path):
    root, url = served
    build_zip(faces_dir, root / "full.zip")
    with zipfile.ZipFile(root / "full.zip") as src, zipfile.ZipFile(root / "part.zip", "w") as dst:
        for name in src.namelist():
            if not name.startswith("orl_faces/s40/"):
                dst.writestr(name, src.read(name))
    with pytest.raises(FetchError, match="no s40/1.pgm"):
        fetch_faces(f"{url}/part.zip", tmp_path / "a")
    (root / "page.html").write_text("<html>moved</html>")
    with pytest.raises(FetchError, match="neither a zip nor a tar"):
        fetch_faces(f"{url}/page.html", tmp_path / "b")
    with pytest.raises(FetchError, match="could not download"):
        fetch_faces(f"{url}/missing.zip", tmp_path / "c")


def test_zip_slip_is_refused(served, tmp_path):
    root, url = served
    with zipfile.ZipFile(root / "evil.zip", "w") as zf:
        zf.writestr("../../escaped.txt", "x")
    with pytest.raises(FetchError, match="outside the folder"):
        fetch_faces(f"{url}/evil.zip", tmp_path / "d" / "att")
    assert not (tmp_path / "escaped.txt").exists()
