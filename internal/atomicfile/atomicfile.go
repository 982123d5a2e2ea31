// Package atomicfile replaces a file so that a reader (or a process that starts after a
// crash) sees the old content or the new, never a part: write a temporary file beside it,
// fsync, rename.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces path with data. The file is private (0600) and its directory is made
// (0700) when missing.
func Write(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*") // created 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
