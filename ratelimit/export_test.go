package ratelimit

// Lookups returns how many requests s sent to the admin API.
func Lookups(s *HydraSource) int64 { return s.lookups.Load() }
