//go:build race

package placement

// The race detector slows consistent down about eightfold: TestMovement then
// checks a subset of its sizes (see raceEnabled in ring_test.go).
func init() { raceEnabled = true }
