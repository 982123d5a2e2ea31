package definitions

import (
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// What -f may name besides a file.
const (
	// Stdin is the name that reads standard input.
	Stdin = "-"
	// MaxDocumentBytes bounds a definition read from standard input or a URL.
	MaxDocumentBytes = 16 << 20
	// FetchTimeout bounds fetching a definition from a URL.
	FetchTimeout = 15 * time.Second
)

// source is one file's worth of documents: its name in messages, where references in it
// are relative to ("" for standard input: it has no place), and its bytes.
type source struct {
	name     string
	location string
	data     []byte
}

// read expands what one -f names: a file; "-" (standard input); a directory (its
// *.yaml, *.yml and *.json files, recursively, in lexical order); or an http(s) URL (an
// OpenAPI document, fetched within FetchTimeout, at most MaxDocumentBytes).
func read(path string, stdin io.Reader) ([]source, error) {
	switch {
	case path == Stdin:
		b, err := readAtMost(stdin, "standard input")
		return []source{{"<stdin>", "", b}}, err
	case isURL(path):
		b, err := fetch(path)
		return []source{{path, path, b}}, err
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		b, err := readFile(path)
		return []source{{path, absolute(path), b}}, err
	}
	var out []source
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !isDefinitionFile(p) {
			return nil
		}
		b, err := readFile(p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, source{p, absolute(p), b})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("no *.yaml, *.yml or *.json file in the directory")
	}
	return out, err
}

func isDefinitionFile(p string) bool {
	switch strings.ToLower(filepath.Ext(p)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// readFile reads a definition file of at most MaxDocumentBytes.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAtMost(f, "the file")
}

func fetch(url string) ([]byte, error) {
	client := &http.Client{Timeout: FetchTimeout}
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching: HTTP %s", resp.Status)
	}
	return readAtMost(resp.Body, "the document")
}

func readAtMost(r io.Reader, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxDocumentBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxDocumentBytes {
		return nil, fmt.Errorf("%s is larger than %d MiB, the most a definition may be", what, MaxDocumentBytes>>20)
	}
	return b, nil
}
