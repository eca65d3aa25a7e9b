"""The content repository: `cgan generate` registration, listing, export, removal and fsck."""

from __future__ import annotations

import json
from pathlib import Path

from test_db_support import (  # noqa: F401
    assert_consistent, content_rows, db_url, invoke, sha256, sqlite_url, trained_run, visible_files,
)


def _generate(run: Path, out: Path, *extra: str) -> dict:
    result = invoke("generate", str(run), "--out", str(out), "--json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_generating_twice_with_the_same_seed_leaves_n_files_and_n_rows(db_url: str, trained_run: Path,
                                                                         tmp_path: Path) -> None:
    out = tmp_path / "content"
    first = _generate(trained_run, out, "-n", "5", "--seed", "3", "--batch-size", "2")
    digests = {path: sha256(Path(path)) for path in first["files"]}
    second = _generate(trained_run, out, "-n", "5", "--seed", "3", "--batch-size", "2")
    assert second["content_ids"] == first["content_ids"]
    assert {path: sha256(Path(path)) for path in second["files"]} == digests
    rows = assert_consistent(db_url, out)
    assert len(rows) == 5 and len(visible_files(out)) == 5
    assert len(set(digests.values())) == 5  # five different samples
    listed = json.loads(invoke("content", "list", "--json").stdout)
    assert [item["sample_index"] for item in listed] == [0, 1, 2, 3, 4]
    assert {item["seed"] for item in listed} == {3}
    assert {item["checkpoint"] for item in listed} == {"step-00000006"}
    assert {item["run"] for item in listed} == {"tiny"}
    assert {item["format"] for item in listed} == {"png"} and {item["modality"] for item in listed} == {"image"}
    assert listed[0]["metadata"]["checkpoint_step"] == 6
    # Another seed adds different files; another checkpoint replaces the bytes of the same paths.
    other = _generate(trained_run, out, "-n", "5", "--seed", "4")
    assert not set(other["files"]) & set(first["files"])
    _generate(trained_run, out, "-n", "5", "--seed", "3", "--checkpoint", "step-00000003")
    rows = assert_consistent(db_url, out)
    assert len(rows) == 10
    assert {sha256(Path(p)) for p in first["files"]} != set(digests.values())
    listed = json.loads(invoke("content", "list", "--json", "--seed", "3").stdout)
    assert {item["checkpoint"] for item in listed} == {"step-00000003"}


def test_list_filters_and_errors(sqlite_url: str, trained_run: Path, tmp_path: Path) -> None:
    _generate(trained_run, tmp_path / "a", "-n", "3")
    assert len(json.loads(invoke("content", "list", "--json", "--run", "tiny").stdout)) == 3
    assert len(json.loads(invoke("content", "list", "--json", "--run", str(trained_run)).stdout)) == 3
    assert json.loads(invoke("content", "list", "--json", "--modality", "text").stdout) == []
    assert len(json.loads(invoke("content", "list", "--json", "--limit", "2").stdout)) == 2
    table = invoke("content", "list")
    assert table.exit_code == 0 and "seed0-sample-000002.png" in table.stdout.replace("\n", "").replace("│", "")
    unknown = invoke("content", "list", "--run", "nope")
    assert unknown.exit_code == 2 and "no run 'nope'" in unknown.output


def test_export_to_a_folder_and_to_fsspec_urls(db_url: str, trained_run: Path, tmp_path: Path) -> None:
    import fsspec

    made = _generate(trained_run, tmp_path / "content", "-n", "3", "--seed", "1")
    digests = sorted(sha256(Path(p)) for p in made["files"])
    for dest in (str(tmp_path / "folder"), f"file://{tmp_path / 'viaurl'}"):
        result = invoke("content", "export", dest, "--run", "tiny")
        assert result.exit_code == 0, result.output
        root = Path(dest.removeprefix("file://"))
        files = sorted(root.glob("tiny/step-00000006/*.png"))
        assert sorted(sha256(p) for p in files) == digests
        manifest = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
        assert sorted(m["sha256"] for m in manifest) == digests
        assert all((root / m["export_path"]).is_file() for m in manifest)
    memory = fsspec.filesystem("memory")
    result = invoke("content", "export", "memory://cgan-export", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["files"] == 3
    exported = sorted(p for p in memory.find("/cgan-export") if p.endswith(".png"))
    assert sorted(__import__("hashlib").sha256(memory.cat(p)).hexdigest() for p in exported) == digests
    manifest = memory.cat("/cgan-export/manifest.jsonl").decode().splitlines()
    assert len(manifest) == 3
    memory.rm("/cgan-export", recursive=True)


def test_export_refuses_a_file_that_changed(sqlite_url: str, trained_run: Path, tmp_path: Path) -> None:
    made = _generate(trained_run, tmp_path / "content", "-n", "2")
    Path(made["files"][1]).write_bytes(b"not the png that was generated")
    result = invoke("content", "export", str(tmp_path / "dest"))
    assert result.exit_code == 1
    assert "does not match its sha256" in result.output


def test_rm_removes_files_and_rows_together(db_url: str, trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "content"
    made = _generate(trained_run, out, "-n", "4")
    result = invoke("content", "rm", str(made["content_ids"][0]), str(made["content_ids"][2]))
    assert result.exit_code == 0, result.output
    assert not Path(made["files"][0]).exists() and not Path(made["files"][2]).exists()
    rows = assert_consistent(db_url, out)
    assert [r[0] for r in rows] == [made["content_ids"][1], made["content_ids"][3]]
    nothing = invoke("content", "rm")
    assert nothing.exit_code == 2 and "say which content" in nothing.output
    unknown = invoke("content", "rm", "9999")
    assert unknown.exit_code == 2 and "9999" in unknown.output
    assert invoke("content", "rm", "--run", "tiny").exit_code == 0
    assert content_rows(db_url) == [] and visible_files(out) == set()


def test_fsck_reports_and_repairs(sqlite_url: str, trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "content"
    made = _generate(trained_run, out, "-n", "4")
    assert invoke("content", "fsck").exit_code == 0
    Path(made["files"][0]).unlink()  # missing
    corrupt = Path(made["files"][1])
    corrupt.write_bytes(corrupt.read_bytes()[:-1] + b"\x00")  # same size, other bytes
    (out / "stray.png").write_bytes(b"not registered")  # untracked
    report = invoke("content", "fsck", "--json")
    assert report.exit_code == 1
    found = json.loads(report.stdout)
    assert found["missing"] == [made["files"][0]] and found["corrupt"] == []  # size matches: needs --verify
    assert found["untracked"] == [str(out / "stray.png")]
    verified = json.loads(invoke("content", "fsck", "--verify", "--json").stdout)
    assert verified["corrupt"] == [str(corrupt)]
    repaired = invoke("content", "fsck", "--verify", "--repair", "--remove-untracked")
    assert repaired.exit_code == 0, repaired.output
    assert not corrupt.exists() and not (out / "stray.png").exists()
    rows = assert_consistent(sqlite_url, out)
    assert sorted(r[1] for r in rows) == made["files"][2:]
    assert invoke("content", "fsck", "--verify").exit_code == 0
    assert invoke("content", "fsck", "--remove-untracked").exit_code == 2
