package voicesim

import (
	"encoding/binary"
	"net/http"
	"strconv"
)

// serveRecording serves the file a recording-URL Location points to: one second of A-law
// silence, 8 kHz mono, as the platform's recordings are formatted (ref §5.2).
func (s *Simulator) serveRecording(w http.ResponseWriter, name string) {
	s.mu.Lock()
	_, ok := s.recordings[name]
	s.mu.Unlock()
	if !ok {
		http.Error(w, "recording not found", http.StatusNotFound)
		return
	}
	wav := silentALawWAV(8000)
	w.Header().Set("Content-Type", "audio/wav")
	w.Header().Set("Content-Length", strconv.Itoa(len(wav)))
	_, _ = w.Write(wav)
}

// silentALawWAV returns a WAV file of n A-law samples of silence at 8000 Hz, mono.
func silentALawWAV(n int) []byte {
	const (
		formatALaw = 6
		rate       = 8000
		headerSize = 44
	)
	b := make([]byte, headerSize+n)
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(headerSize-8+n))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)         // fmt chunk size
	binary.LittleEndian.PutUint16(b[20:], formatALaw) // audio format
	binary.LittleEndian.PutUint16(b[22:], 1)          // channels
	binary.LittleEndian.PutUint32(b[24:], rate)       // sample rate
	binary.LittleEndian.PutUint32(b[28:], rate)       // byte rate: 8 bits × 1 channel
	binary.LittleEndian.PutUint16(b[32:], 1)          // block align
	binary.LittleEndian.PutUint16(b[34:], 8)          // bits per sample
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(n))
	for i := headerSize; i < len(b); i++ {
		b[i] = 0xD5 // A-law zero
	}
	return b
}
