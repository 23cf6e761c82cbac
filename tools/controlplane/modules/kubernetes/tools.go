//go:build tools

// Package tools pins the Kubernetes commands that build.sh builds from this
// wrapper module (kube-apiserver and kubectl). It is never compiled: the build
// tag keeps it out of builds, while `go mod tidy` still records the
// dependencies of both commands in go.mod and go.sum.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
