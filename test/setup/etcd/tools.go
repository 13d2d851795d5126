//go:build tools

// Package tools pins etcd for the operator's integration tests.
package tools

import _ "go.etcd.io/etcd/server/v3"
