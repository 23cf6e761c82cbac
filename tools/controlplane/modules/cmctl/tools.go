//go:build tools

// Package tools pins cmctl (the root package of github.com/cert-manager/cmctl/v2
// is its main package) for build.sh. It is never compiled.
package tools

import (
	_ "github.com/cert-manager/cmctl/v2"
)
