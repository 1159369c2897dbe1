//go:build !unix

package node

// raiseFDLimit is unknown here: HTTP connections are capped by
// operationsApi.network.maxConnections alone.
func raiseFDLimit() uint64 { return 0 }
