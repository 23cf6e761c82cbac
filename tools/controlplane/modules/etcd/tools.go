//go:build tools

// Package tools pins etcd (the root package of go.etcd.io/etcd/server/v3 is
// its main package) for build.sh. It is never compiled; see the kubernetes
// wrapper module for why this file exists.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
