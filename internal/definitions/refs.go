package definitions

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/tollgate-gw/tollgate/internal/apimodel/openapi"
)

// A definition may refer to other files ($ref: "common/errors.yml#/..."): they are read
// relative to the file that refers to them, and only from below the root document's own
// directory (for a document read from a URL: only from its scheme and host). Loading
// bundles them into one document, which is what is stored: the gateway never reads files.

// opener is what references in src may read.
func opener(src source) openapi.Opener {
	switch {
	case src.location == "":
		return func(string, string) (string, []byte, error) {
			return "", nil, errors.New("a document read from standard input cannot refer to other files: give its path with -f")
		}
	case isURL(src.location):
		return urlOpener(src.location)
	}
	return fileOpener(src.location)
}

func isURL(s string) bool { return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") }

// absolute is a file's cleaned absolute path (the path itself when that cannot be had).
func absolute(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func fileOpener(root string) openapi.Opener {
	dir := filepath.Dir(root)
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	return func(from, ref string) (string, []byte, error) {
		if isURL(ref) || strings.Contains(ref, "://") {
			return "", nil, errors.New("a definition read from a file may refer to other files below its directory, not to URLs")
		}
		if u, err := url.PathUnescape(ref); err == nil {
			ref = u
		}
		p := filepath.FromSlash(ref)
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(from), p)
		}
		p = filepath.Clean(p)
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return "", nil, fmt.Errorf("cannot read %s: %w", p, errors.Unwrap(err))
		}
		if rel, err := filepath.Rel(dir, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "", nil, fmt.Errorf("%s is outside %s, the directory of the document: references are read only below it", p, dir)
		}
		b, err := readFile(real)
		if err != nil {
			return "", nil, fmt.Errorf("%s: %w", p, err)
		}
		return p, b, nil
	}
}

func urlOpener(root string) openapi.Opener {
	base, _ := url.Parse(root)
	return func(from, ref string) (string, []byte, error) {
		f, err := url.Parse(from)
		if err != nil {
			return "", nil, err
		}
		u, err := f.Parse(ref)
		if err != nil {
			return "", nil, err
		}
		if u.Scheme != base.Scheme || u.Host != base.Host {
			return "", nil, fmt.Errorf("%s is not on %s://%s, the document's host: references are read only from there", u.Redacted(), base.Scheme, base.Host)
		}
		u.Fragment = ""
		b, err := fetch(u.String())
		if err != nil {
			return "", nil, fmt.Errorf("%s: %w", u.Redacted(), err)
		}
		return u.String(), b, nil
	}
}
