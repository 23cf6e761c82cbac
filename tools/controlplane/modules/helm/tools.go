//go:build tools

// Package tools pins the helm command for build.sh. It is never compiled.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
