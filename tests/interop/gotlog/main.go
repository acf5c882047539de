// Command gotlog checks an ailedger log published as C2SP tlog-tiles (for example in an S3 bucket read
// over its plain HTTP endpoint) with Go's own transparency-log code, golang.org/x/mod/sumdb/tlog and
// golang.org/x/mod/sumdb/note: another implementation than the Python one that wrote the tiles.
//
// It opens the signed checkpoint with note.Open and a verifier built from the log's vkey, then reads the
// hash tiles through tlog.TileHashReader (which authenticates every tile it loads against the
// checkpoint's root) with a TileReader that maps Go's sumdb tile coordinates to C2SP paths:
//
//	sumdb:  tile/8/L/NNN[.p/W]   tile/8/data/NNN[.p/W]
//	C2SP:   tile/L/NNN[.p/W]     tile/entries/NNN[.p/W]
//
// (the same N in three-digit x-groups, the same partial widths; C2SP drops the height, which is always 8,
// and its entry bundles prefix each entry with a two-byte length where sumdb's data tiles do not).
// For each index it takes the entry from its entry bundle, hashes it with tlog.RecordHash (the RFC 6962
// leaf hash), and checks tlog.ProveRecord + tlog.CheckRecord against every checkpoint that covers it; with
// -old-checkpoint it also checks tlog.ProveTree + tlog.CheckTree from the old size to the new one.
// A partial tile an old checkpoint names but the store no longer holds is cut from the full tile or from
// the newest checkpoint's partial tile (the same leading hashes), and authenticated like any other.
// tlog.CheckRecord and tlog.CheckTree against the signed root decide: in x/mod's tileHashReader some
// tiles fetched for a single index escape the check against their parent (its loop over the tiles to
// authenticate starts at len(stx), the count of subtree hashes, not of the tiles that hold them), so
// hashes it returns are not taken as proven on their own.
//
// Output is one JSON object. Exit 0: everything holds; 1: something does not (the JSON's "error" says
// what); 2: bad usage or the tiles cannot be read.
//
// Build offline from Debian's packages (golang-go, golang-golang-x-mod-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off GOCACHE=$(mktemp -d) go build -o gotlog main.go
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const (
	height      = 8 // C2SP tlog-tiles: tiles are always 2^8 = 256 hashes wide
	width       = 1 << height
	maxEntry    = 0xFFFF
	maxBundle   = width * (2 + maxEntry)
	maxCheckpnt = 1 << 16
)

// failure is a verification failure (exit 1); any other error is exit 2.
type failure struct{ msg string }

func (f *failure) Error() string { return f.msg }

func fail(format string, args ...interface{}) error {
	return &failure{fmt.Sprintf(format, args...)}
}

type notFound struct{ url string }

func (e *notFound) Error() string { return "404 not found: " + e.url }

// c2spPath is the C2SP tlog-tiles path of a sumdb tile: Tile.Path() without the height, "data" as "entries".
func c2spPath(t tlog.Tile) (string, error) {
	if t.H != height {
		return "", fmt.Errorf("tile height %d: C2SP tlog-tiles uses %d", t.H, height)
	}
	p := t.Path() // tile/8/L/NNN[.p/W] or tile/8/data/NNN[.p/W]
	back, err := tlog.ParseTilePath(p)
	if err != nil || back != t {
		return "", fmt.Errorf("tile %+v has no canonical path", t)
	}
	rest := strings.TrimPrefix(p, "tile/"+strconv.Itoa(height)+"/")
	if strings.HasPrefix(rest, "data/") {
		rest = "entries/" + strings.TrimPrefix(rest, "data/")
	}
	return "tile/" + rest, nil
}

// fetcher reads files under the base URL, remembering what it read and the partial tiles it had to cut
// from their full tile (an exporter may have pruned a partial tile an older checkpoint still names).
type fetcher struct {
	base      string
	client    *http.Client
	cache     map[string][]byte
	missing   map[string]bool // answered 404 once: not asked again
	cut       map[string]bool
	batch     []string // the tiles of the last ReadTiles call
	Fetched   []string `json:"fetched"`
	FromWider []string `json:"partials_cut_from_wider"`
	latest    int64    // the size of the newest checkpoint
	Authentic int      `json:"tiles_authenticated"`
}

func (f *fetcher) get(path string, limit int64) ([]byte, error) {
	url := f.base + "/" + path
	if d, ok := f.cache[path]; ok {
		return d, nil
	}
	if f.missing[path] {
		return nil, &notFound{url}
	}
	resp, err := f.client.Get(url)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		f.missing[path] = true
		return nil, &notFound{url}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", url, err)
	}
	if int64(len(data)) > limit {
		return nil, fail("%s is larger than %d bytes", path, limit)
	}
	f.cache[path] = data
	f.Fetched = append(f.Fetched, path)
	return data, nil
}

// getTile reads a tile or entry bundle. A partial tile an older checkpoint names may be gone from the
// store (the exporter prunes partial tiles once their full tile is out, and a bucket holds only the
// right edge of its latest checkpoint): it is read from the full tile, else from the partial tile of the
// latest checkpoint, which begins with the same hashes (entries), and cut to its width by the caller.
func (f *fetcher) getTile(t tlog.Tile, limit int64) (path string, data []byte, cut bool, err error) {
	path, err = c2spPath(t)
	if err != nil {
		return path, nil, false, err
	}
	data, err = f.get(path, limit)
	var nf *notFound
	if !errors.As(err, &nf) || t.W == width {
		return path, data, false, err
	}
	tries := []tlog.Tile{{H: t.H, L: t.L, N: t.N, W: width}}
	level := t.L
	if level < 0 {
		level = 0
	}
	if w := (f.latest >> uint(level*height)) - t.N*width; w > int64(t.W) && w < width {
		tries = append(tries, tlog.Tile{H: t.H, L: t.L, N: t.N, W: int(w)})
	}
	tried := []string{}
	for _, wider := range tries {
		p, _ := c2spPath(wider)
		data, err = f.get(p, limit)
		if errors.As(err, &nf) {
			tried = append(tried, p)
			continue
		}
		if err == nil && !f.cut[path] {
			f.cut[path] = true
			f.FromWider = append(f.FromWider, path+" <- "+p)
		}
		return path, data, true, err
	}
	return path, nil, false, &notFound{f.base + "/" + path + " (nor " + strings.Join(tried, ", ") + ")"}
}

// tileReader is the tlog.TileReader over the C2SP paths.
type tileReader struct{ f *fetcher }

func (r tileReader) Height() int { return height }

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	r.f.batch = r.f.batch[:0]
	for i, t := range tiles {
		if t.L < 0 {
			return nil, fmt.Errorf("tlog asked for a data tile %+v", t)
		}
		p, data, cut, err := r.f.getTile(t, width*tlog.HashSize)
		r.f.batch = append(r.f.batch, p)
		if err != nil {
			return nil, err
		}
		n := t.W * tlog.HashSize
		if cut && len(data) >= n {
			data = data[:n]
		}
		if len(data) != n {
			return nil, fail("%s holds %d bytes, not the %d of %d hashes", p, len(data), n, t.W)
		}
		out[i] = data
	}
	return out, nil
}

func (r tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) { r.f.Authentic += len(tiles) }

// checkpoint is a C2SP tlog-checkpoint opened with Go's signed-note code.
type checkpoint struct {
	Origin     string `json:"origin"`
	Size       int64  `json:"size"`
	Root       string `json:"root"`
	SignedBy   string `json:"signed_by"`
	Unverified int    `json:"other_signatures"`
	tree       tlog.Tree
}

func openCheckpoint(msg []byte, v note.Verifier) (*checkpoint, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return nil, fail("checkpoint signature: %v", err)
	}
	lines := strings.Split(n.Text, "\n") // origin, size, root, extensions..., ""
	if len(lines) < 4 {
		return nil, fail("checkpoint needs origin, size and root lines")
	}
	if lines[0] != v.Name() {
		return nil, fail("checkpoint origin %q is not the key's name %q", lines[0], v.Name())
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return nil, fail("checkpoint size %q is not a decimal number", lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return nil, fail("checkpoint root %q is not a base64 SHA-256 hash", lines[2])
	}
	cp := &checkpoint{Origin: lines[0], Size: size, Root: hex.EncodeToString(root),
		SignedBy: n.Sigs[0].Name, Unverified: len(n.UnverifiedSigs)}
	cp.tree.N = size
	copy(cp.tree.Hash[:], root)
	return cp, nil
}

// entry returns entry i of the log as its entry bundle for a tree of the given size holds it.
func entry(f *fetcher, i, size int64) ([]byte, string, error) {
	t := tlog.Tile{H: height, L: -1, N: i / width, W: width}
	if rest := size - t.N*width; rest < width {
		t.W = int(rest)
	}
	p, data, cut, err := f.getTile(t, maxBundle)
	if err != nil {
		return nil, p, err
	}
	var entries [][]byte
	for len(data) > 0 {
		if len(data) < 2 {
			return nil, p, fail("%s ends inside an entry's length", p)
		}
		n := int(data[0])<<8 | int(data[1])
		if len(data) < 2+n {
			return nil, p, fail("%s: entry %d is cut short", p, len(entries))
		}
		entries = append(entries, data[2:2+n])
		data = data[2+n:]
	}
	if cut && len(entries) >= t.W {
		entries = entries[:t.W]
	}
	if len(entries) != t.W {
		return nil, p, fail("%s holds %d entries, not %d", p, len(entries), t.W)
	}
	return entries[i%width], p, nil
}

type inclusion struct {
	Index    int64  `json:"index"`
	TreeSize int64  `json:"tree_size"`
	Bundle   string `json:"entry_bundle"`
	LeafHash string `json:"leaf_hash"`
	Proof    int    `json:"proof_hashes"`
}

type consistency struct {
	Old   int64 `json:"old_size"`
	New   int64 `json:"new_size"`
	Proof int   `json:"proof_hashes"`
}

type report struct {
	OK          bool         `json:"ok"`
	Error       string       `json:"error,omitempty"`
	Verifier    string       `json:"verifier"`
	Checkpoint  *checkpoint  `json:"checkpoint,omitempty"`
	Old         *checkpoint  `json:"old_checkpoint,omitempty"`
	Inclusion   []inclusion  `json:"inclusion"`
	Consistency *consistency `json:"consistency,omitempty"`
	*fetcher
}

func proveInclusion(f *fetcher, cp *checkpoint, i int64) (inclusion, error) {
	data, bundle, err := entry(f, i, cp.Size)
	if err != nil {
		return inclusion{}, err
	}
	leaf := tlog.RecordHash(data)
	thr := tlog.TileHashReader(cp.tree, tileReader{f})
	// the level-0 hash tile must hold exactly the RFC 6962 leaf hash of the entry's bytes
	stored, err := thr.ReadHashes([]int64{tlog.StoredHashIndex(0, i)})
	if err != nil {
		return inclusion{}, tileErr(err, cp, f)
	}
	if stored[0] != leaf {
		return inclusion{}, fail("entry %d in %s hashes to %x, but the hash tiles hold %x for it",
			i, bundle, leaf[:], stored[0][:])
	}
	proof, err := tlog.ProveRecord(cp.Size, i, thr)
	if err != nil {
		return inclusion{}, tileErr(err, cp, f)
	}
	if err := tlog.CheckRecord(proof, cp.Size, cp.tree.Hash, i, leaf); err != nil {
		return inclusion{}, fail("inclusion of entry %d in tree %d: %v", i, cp.Size, err)
	}
	return inclusion{Index: i, TreeSize: cp.Size, Bundle: bundle, LeafHash: hex.EncodeToString(leaf[:]),
		Proof: len(proof)}, nil
}

// tileErr makes tlog's "downloaded inconsistent tile" (tiles that do not give the checkpoint's root) a
// verification failure; a read error stays one.
func tileErr(err error, cp *checkpoint, fe *fetcher) error {
	var f *failure
	var nf *notFound
	if errors.As(err, &f) || errors.As(err, &nf) || strings.HasPrefix(err.Error(), "cannot read") ||
		strings.Contains(err.Error(), " answered ") {
		return err
	}
	// tlog cannot tell which tile is wrong, only that these do not give the root together
	return fail("hash tiles for tree %d: %v (one of %s)", cp.Size, err, strings.Join(fe.batch, ", "))
}

func parseIndexes(s string) ([]int64, error) {
	var out []int64
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		i, err := strconv.ParseInt(part, 10, 64)
		if err != nil || i < 0 {
			return nil, fmt.Errorf("-index %q: not a non-negative integer", part)
		}
		out = append(out, i)
	}
	return out, nil
}

func run(rep *report, base, vkey, cpFile, oldFile, idx string) error {
	if base == "" || vkey == "" {
		return errors.New("-base URL and -vkey VKEY are required")
	}
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return fmt.Errorf("-base %q is not an http(s) URL", base)
	}
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return fmt.Errorf("-vkey: %v", err)
	}
	rep.Verifier = v.Name()
	indexes, err := parseIndexes(idx)
	if err != nil {
		return err
	}
	f := rep.fetcher
	readCp := func(file string) ([]byte, error) {
		if file == "" {
			return f.get("checkpoint", maxCheckpnt)
		}
		return os.ReadFile(file)
	}
	msg, err := readCp(cpFile)
	if err != nil {
		return err
	}
	cp, err := openCheckpoint(msg, v)
	if err != nil {
		return err
	}
	rep.Checkpoint = cp
	f.latest = cp.Size
	cps := []*checkpoint{cp}
	if oldFile != "" {
		msg, err := readCp(oldFile)
		if err != nil {
			return err
		}
		old, err := openCheckpoint(msg, v)
		if err != nil {
			return err
		}
		rep.Old = old
		if old.Size > cp.Size {
			return fail("old checkpoint size %d is larger than the checkpoint's %d", old.Size, cp.Size)
		}
		cps = append(cps, old)
	}
	for _, i := range indexes {
		if i >= cp.Size {
			return fmt.Errorf("index %d is not in the log (size %d)", i, cp.Size)
		}
	}
	for _, c := range cps {
		for _, i := range indexes {
			if i >= c.Size {
				continue
			}
			inc, err := proveInclusion(f, c, i)
			if err != nil {
				return err
			}
			rep.Inclusion = append(rep.Inclusion, inc)
		}
	}
	if rep.Old != nil {
		old := rep.Old
		thr := tlog.TileHashReader(cp.tree, tileReader{f})
		proof, err := tlog.ProveTree(cp.Size, old.Size, thr)
		if err != nil {
			return tileErr(err, cp, f)
		}
		if err := tlog.CheckTree(proof, cp.Size, cp.tree.Hash, old.Size, old.tree.Hash); err != nil {
			return fail("checkpoint %d is not consistent with old checkpoint %d: %v", cp.Size, old.Size, err)
		}
		rep.Consistency = &consistency{Old: old.Size, New: cp.Size, Proof: len(proof)}
	}
	sort.Strings(f.Fetched)
	return nil
}

// mapTiles reads "L N W" lines (L = -1: entries) and prints, per tile, Go's sumdb path and the C2SP path
// the TileReader fetches: the path mapping on its own, for tile numbers no test log reaches.
func mapTiles(in io.Reader, out io.Writer) error {
	data, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	type pair struct {
		Sumdb string `json:"sumdb"`
		C2SP  string `json:"c2sp"`
	}
	pairs := []pair{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var t tlog.Tile
		if _, err := fmt.Sscanf(line, "%d %d %d", &t.L, &t.N, &t.W); err != nil {
			return fmt.Errorf("line %q: want L N W", line)
		}
		t.H = height
		c, err := c2spPath(t)
		if err != nil {
			return err
		}
		pairs = append(pairs, pair{t.Path(), c})
	}
	return json.NewEncoder(out).Encode(pairs)
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == "-map-tiles" {
		if err := mapTiles(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "gotlog -map-tiles:", err)
			os.Exit(2)
		}
		return
	}
	base := flag.String("base", "", "base URL of the published log (`http://HOST:PORT/BUCKET/PREFIX`)")
	vkey := flag.String("vkey", "", "the log's signed-note verifier key (name+hash+key)")
	cpFile := flag.String("checkpoint", "", "signed checkpoint file (default: BASE/checkpoint)")
	oldFile := flag.String("old-checkpoint", "", "an older signed checkpoint: check consistency and inclusion in it too")
	idx := flag.String("index", "", "comma-separated entry indexes to prove")
	timeout := flag.Duration("timeout", 30*time.Second, "HTTP timeout per request")
	flag.Parse()
	rep := &report{Inclusion: []inclusion{}, fetcher: &fetcher{base: strings.TrimRight(*base, "/"),
		client: &http.Client{Timeout: *timeout}, cache: map[string][]byte{},
		missing: map[string]bool{}, cut: map[string]bool{}, Fetched: []string{},
		FromWider: []string{}}}
	err := run(rep, *base, *vkey, *cpFile, *oldFile, *idx)
	code := 0
	if err != nil {
		rep.Error = err.Error()
		code = 2
		var f *failure
		if errors.As(err, &f) {
			code = 1
		}
	} else {
		rep.OK = true
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(rep)
	os.Stdout.Write(buf.Bytes())
	os.Exit(code)
}
