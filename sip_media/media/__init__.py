"""Media engine: RTP legs, G.711, DTMF, players, recorders and the mixing matrix."""
