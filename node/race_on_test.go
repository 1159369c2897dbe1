//go:build race

package node_test

// raceEnabled scales heavy tests down under the race detector, which slows
// this code 5-10x.
const raceEnabled = true
