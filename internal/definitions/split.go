// Package definitions reads definition files: what one file holds, as documents to parse.
package definitions

import (
	"bytes"
	"fmt"
)

// Document is one YAML document of a file, with the name problems are reported under.
type Document struct {
	Name string // the file, or "file (document N)" when the file holds several
	Data []byte // the document as written
}

// Split cuts a file into its YAML documents at "---" lines (a "..." line ends one), as
// Kubernetes users write several definitions in one file. Empty documents are skipped; a
// JSON file is one document.
func Split(file string, data []byte) []Document {
	var docs [][]byte
	var cur []byte
	flush := func() {
		if len(bytes.TrimSpace(stripComments(cur))) > 0 {
			docs = append(docs, cur)
		}
		cur = nil
	}
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		t := bytes.TrimRight(line, " \t\r\n")
		if bytes.Equal(t, []byte("---")) || bytes.HasPrefix(t, []byte("--- ")) || bytes.Equal(t, []byte("...")) {
			flush()
			if rest := bytes.TrimSpace(t[3:]); len(rest) > 0 && rest[0] != '#' {
				cur = append(cur, append(rest, '\n')...) // "--- {inline: doc}"
			}
			continue
		}
		cur = append(cur, line...)
	}
	flush()
	if len(docs) <= 1 {
		return []Document{{Name: file, Data: data}}
	}
	out := make([]Document, len(docs))
	for i, d := range docs {
		out[i] = Document{Name: fmt.Sprintf("%s (document %d)", file, i+1), Data: d}
	}
	return out
}

// stripComments drops whole-line comments, so that a document of comments only is empty.
func stripComments(b []byte) []byte {
	var out []byte
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] == '#' {
			continue
		}
		out = append(out, line...)
	}
	return out
}
