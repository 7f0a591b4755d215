package voice

import "testing"

func TestMaskNumber(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"+8613800000001", "+86138****0001"},
		{"+8675528000088", "+86755****0088"},
		{"+123456789012", "+12345****9012"},
		{"+49301234567", "+****4567"},
		{"+12345678", "+****5678"},
		{"+1234567", "****"},
		{"+86", "****"},
		{"13800000001", "****0001"},
		{"", ""},
		{"+86138号码00000001", "+86138****0001"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got := MaskNumber(tt.in); got != tt.want {
				t.Fatalf("MaskNumber(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
