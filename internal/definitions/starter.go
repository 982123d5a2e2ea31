package definitions

import _ "embed"

// Starter is the API definition `tollgate init` writes: one open operation and one that
// needs a scope. A test holds it to validating.
//
//go:embed starter.yaml
var Starter []byte
