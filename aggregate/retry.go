package aggregate

// shouldRetry reports whether a command that met a newer stream version on its
// attempt-th execution (1-based) may run again, reloading first, under a limit of
// maxRetries retries. Each retry follows a catch-up read, so no backoff is needed:
// a retry only loses again if yet another writer appended in between.
func shouldRetry(attempt, maxRetries int) bool {
	return attempt <= maxRetries
}
