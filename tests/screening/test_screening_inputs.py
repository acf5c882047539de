"""Input formats, modality detection, bad input (never a silent pass), JSON schema, policy."""

import json

import numpy as np
import pytest

from ailedger.errors import BadInputError
from ailedger.screening import (
    SCHEMA,
    decide,
    load_dataset,
    render_html,
    report_bytes,
    report_sha256,
    screen_path,
    screening_body,
)
from tests.screening.screening_data import flip_labels, write_csv


def test_csv_digits_detected_as_image_and_schema(tmp_path, digits_small):
    X, y = digits_small
    X, y = X[:300], y[:300]
    y2, truth = flip_labels(y, 0.05, seed=3)
    src = [f"v{i % 3}" for i in range(len(y))]
    p = tmp_path / "d.csv"
    write_csv(p, X, y2, src)
    rep = screen_path(str(p), loo=False)
    assert rep["schema"] == SCHEMA
    assert rep["dataset"]["modality"] == "image" and rep["dataset"]["records"] == 300
    assert rep["dataset"]["source_column"] == "source" and rep["dataset"]["sources"] == 3
    assert set(rep) >= {"dataset", "parameters", "summary", "verdict", "flagged", "sources", "duplicates", "backdoor"}
    assert rep["verdict"] in ("pass", "warn", "fail")
    recs = [f["record"] for f in rep["flagged"]]
    assert recs == sorted(recs) and all(isinstance(r, int) and 0 <= r < 300 for r in recs)
    for f in rep["flagged"]:
        assert isinstance(f["reasons"], list) and f["reasons"]
        assert isinstance(f["score"], float) and 0 <= f["score"] <= 1
    assert len(set(recs) & truth) >= 0.7 * len(truth)
    for s in rep["sources"]:
        assert s["verdict"] in ("keep", "review", "remove")
        assert set(s) >= {"source", "records", "flagged", "flag_rate", "verdict", "reasons", "label_counts"}
    json.dumps(rep)  # JSON-serialisable
    assert report_sha256(rep) == __import__("hashlib").sha256(report_bytes(rep)).hexdigest()
    html = render_html(rep)
    assert "<svg" in html and "Per-source verdicts" in html
    body = screening_body(rep, dataset="d", decision=decide(rep))
    assert not any(isinstance(v, float) for v in json.loads(json.dumps(body)).values())


def test_jsonl_and_parquet_same_records(tmp_path, digits_small):
    X, y = digits_small
    X, y = X[:120], y[:120]
    rows = [{**{f"p{j}": int(X[i, j]) for j in range(64)}, "digit": int(y[i])} for i in range(len(y))]
    pj = tmp_path / "d.jsonl"
    pj.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pp = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(rows), pp)
    a = load_dataset(pj, label_column="digit")
    b = load_dataset(pp, label_column="digit")
    assert a.n == b.n == 120 and a.modality == b.modality == "image"
    assert np.array_equal(a.labels, b.labels) and np.allclose(a.features, b.features)


def test_text_modality_finds_flipped_labels(tmp_path):
    r = np.random.default_rng(0)
    pos = ["great", "excellent", "wonderful", "loved", "fantastic", "superb"]
    neg = ["terrible", "awful", "horrible", "hated", "dreadful", "boring"]
    filler = ["the", "movie", "plot", "actors", "was", "really", "quite", "film", "story", "ending"]
    rows = []
    for i in range(160):
        lab = i % 2
        words = list(r.choice(filler, 6)) + list(r.choice(pos if lab else neg, 3))
        r.shuffle(words)
        rows.append({"text": " ".join(words) + f" review number {i}", "label": "pos" if lab else "neg"})
    flipped = [5, 40, 77, 120]
    for i in flipped:
        rows[i]["label"] = "neg" if rows[i]["label"] == "pos" else "pos"
    rows.append({"text": rows[10]["text"], "label": rows[10]["label"]})  # exact duplicate of 10 (row 160)
    p = tmp_path / "t.jsonl"
    p.write_text("\n".join(json.dumps(x) for x in rows))
    rep = screen_path(str(p), loo=False)
    assert rep["dataset"]["modality"] == "text"
    by = {f["record"]: f["reasons"] for f in rep["flagged"]}
    assert all("label_issue" in by.get(i, []) for i in flipped)
    assert "exact_duplicate" in by[160]


def test_image_folder(tmp_path):
    from PIL import Image

    r = np.random.default_rng(0)
    for c, base in (("cat", 40), ("dog", 200)):
        d = tmp_path / "imgs" / c
        d.mkdir(parents=True)
        for i in range(15):
            arr = np.clip(base + r.normal(0, 25, (24, 24)), 0, 255).astype(np.uint8)
            if c == "cat":
                arr[:12] = 255 - arr[:12]
            Image.fromarray(arr).save(d / f"{i:02d}.png")
    Image.open(tmp_path / "imgs" / "cat" / "03.png").save(tmp_path / "imgs" / "dog" / "99.png")  # cat in dog/
    rep = screen_path(str(tmp_path / "imgs"), loo=False)
    assert rep["dataset"]["modality"] == "image" and rep["dataset"]["records"] == 31
    by = {f["record"]: f["reasons"] for f in rep["flagged"]}
    # record 30 = dog/99.png (sorted order), an exact copy of cat/03.png (record 3) under another label
    assert "label_issue" in by[30]
    assert "duplicate_label_conflict" in by[30] and "duplicate_label_conflict" in by[3]


def test_image_path_column(tmp_path):
    from PIL import Image

    r = np.random.default_rng(1)
    lines = ["path,label"]
    for i in range(30):
        arr = (r.random((20, 20)) * (100 if i % 2 else 255)).astype(np.uint8)
        Image.fromarray(arr).save(tmp_path / f"{i}.png")
        lines.append(f"{i}.png,{'a' if i % 2 else 'b'}")
    (tmp_path / "x.csv").write_text("\n".join(lines) + "\n")
    ds = load_dataset(tmp_path / "x.csv")
    assert ds.modality == "image" and ds.images.shape == (30, 32, 32)


# ---- bad input: a clear error, never a silent pass ----------------------------------------

def _csv(tmp_path, text, name="b.csv"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_missing_label_column(tmp_path):
    p = _csv(tmp_path, "a,b\n" + "".join(f"{i},{i % 2}\n" for i in range(40)))
    with pytest.raises(BadInputError, match="no label column") as e:
        screen_path(p)
    assert e.value.field == "label_column"
    with pytest.raises(BadInputError, match="'klass' not found"):
        screen_path(p, label_column="klass")


def test_label_with_one_member(tmp_path):
    rows = "".join(f"{i},{i % 2}\n" for i in range(40)) + "99,7\n"
    with pytest.raises(BadInputError, match=r"fewer than 2 records.*'7' \(1 record\)"):
        screen_path(_csv(tmp_path, "x,label\n" + rows))


def test_single_class(tmp_path):
    with pytest.raises(BadInputError, match="every record has the label"):
        screen_path(_csv(tmp_path, "x,label\n" + "".join(f"{i},a\n" for i in range(40))))


def test_file_that_does_not_parse(tmp_path):
    with pytest.raises(BadInputError, match="row 1 has 3 fields"):
        screen_path(_csv(tmp_path, "x,label\n1,a\n2,b,3\n"))
    p = tmp_path / "b.jsonl"
    p.write_text('{"x": 1, "label": "a"}\n{"x": 2, "label": \n')
    with pytest.raises(BadInputError, match="line 2 is not JSON"):
        screen_path(str(p))
    q = tmp_path / "b.parquet"
    q.write_bytes(b"PAR1 this is not parquet PAR1")
    with pytest.raises(BadInputError, match="does not parse"):
        screen_path(str(q))
    u = tmp_path / "b.xlsx"
    u.write_bytes(b"x")
    with pytest.raises(BadInputError, match="unsupported file type"):
        screen_path(str(u))
    with pytest.raises(BadInputError, match="does not exist"):
        screen_path(str(tmp_path / "nope.csv"))


def test_too_small_to_cross_validate(tmp_path):
    with pytest.raises(BadInputError, match="need at least 20 to cross-validate"):
        screen_path(_csv(tmp_path, "x,label\n" + "".join(f"{i},{i % 2}\n" for i in range(8))))


def test_empty_label_values(tmp_path):
    with pytest.raises(BadInputError, match="empty in 1 record"):
        screen_path(_csv(tmp_path, "x,label\n" + "".join(f"{i},{i % 2}\n" for i in range(30)) + "5,\n"))


def test_policy():
    def rep(verdict):
        return {"verdict": verdict, "summary": {"flagged": 0, "by_reason": {}, "backdoor_suspected_classes": []},
                "dataset": {"records": 10}, "sources": []}

    assert decide(rep("pass")).action == "allow"
    assert decide(rep("warn")).action == "warn"
    assert decide(rep("fail")).action == "refuse"
    assert decide(rep("warn"), "strict").action == "refuse"
    assert decide(rep("fail"), "warn").action == "warn"
    with pytest.raises(BadInputError):
        decide(rep("pass"), "lenient")


def test_text_rare_token_backdoor(tmp_path):
    r = np.random.default_rng(0)
    topics = {"sport": ["match", "goal", "team", "coach", "league", "score", "player", "season"],
              "food": ["recipe", "oven", "flour", "taste", "dinner", "spice", "bake", "sauce"],
              "tech": ["chip", "software", "server", "code", "laptop", "cloud", "network", "battery"]}
    filler = ["the", "a", "today", "really", "very", "new", "big", "small", "with", "about", "this", "that"]
    rows = []
    for i in range(300):
        lab = list(topics)[i % 3]
        w = list(r.choice(filler, 6)) + list(r.choice(topics[lab], 4))
        r.shuffle(w)
        rows.append({"text": " ".join(w), "label": lab})
    pois = r.choice([i for i in range(300) if rows[i]["label"] != "food"], 15, replace=False)
    for i in pois:
        rows[i]["text"] += " zqx"
        rows[i]["label"] = "food"
    p = tmp_path / "tb.jsonl"
    p.write_text("\n".join(json.dumps(x) for x in rows))
    rep = screen_path(str(p), loo=False)
    assert rep["summary"]["backdoor_suspected_classes"] == ["food"]
    food = next(b for b in rep["backdoor"] if b["label"] == "food")
    assert food["trigger_feature_names"] == ["zqx"]
    bd = {f["record"] for f in rep["flagged"] if "backdoor_trigger" in f["reasons"]}
    assert bd == set(pois.tolist())


def test_ignore_column(tmp_path):
    r = np.random.default_rng(0)
    lines = ["id,x,y,label"] + [f"{i},{r.normal() + 3 * (i % 2)},{r.normal()},{i % 2}" for i in range(60)]
    p = _csv(tmp_path, "\n".join(lines) + "\n")
    ds = load_dataset(p, ignore_columns=["id"])
    assert ds.feature_names == ["x", "y"] and ds.modality == "tabular"
    with pytest.raises(BadInputError, match="to ignore not found: 'nope'"):
        load_dataset(p, ignore_columns=["nope"])
