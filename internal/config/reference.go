package config

import _ "embed"

// Reference is the configuration file with every field, its default and a comment: what
// `tollgate init` writes and the README's configuration reference shows. Tests hold it to
// Default(), field for field, and the README to it, byte for byte.
//
//go:embed reference.yaml
var Reference []byte
