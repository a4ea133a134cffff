package fingerprint

import (
	"fmt"

	"termagent/hal"
)

// Code is a confirmation code: the first content byte of an ACK.
type Code byte

// Confirmation codes (reference §3). Unknown codes are kept as they are.
const (
	CodeOK             Code = 0x00
	CodeRecvError      Code = 0x01
	CodeNoFinger       Code = 0x02
	CodeImageFail      Code = 0x03
	CodeImageMessy     Code = 0x06
	CodeFewFeatures    Code = 0x07
	CodeNoMatch        Code = 0x08
	CodeNotFound       Code = 0x09
	CodeMergeFail      Code = 0x0A
	CodeBadSlot        Code = 0x0B
	CodeBadTemplate    Code = 0x0C
	CodeUploadFail     Code = 0x0D
	CodeCannotReceive  Code = 0x0E
	CodeImageUpload    Code = 0x0F
	CodeDeleteFail     Code = 0x10
	CodeClearFail      Code = 0x11
	CodeWrongPassword  Code = 0x13
	CodeNoImage        Code = 0x15
	CodeFlashError     Code = 0x18
	CodeBadRegister    Code = 0x1A
	CodeLibraryFull    Code = 0x1F
	CodeBadAddress     Code = 0x20
	CodeVerifyPassword Code = 0x21
	CodeUnsupported    Code = 0xFC
)

var codeText = map[Code]string{
	CodeOK:             "ok",
	CodeRecvError:      "error receiving packet",
	CodeNoFinger:       "no finger",
	CodeImageFail:      "image capture failed",
	CodeImageMessy:     "image too disorderly",
	CodeFewFeatures:    "too few feature points",
	CodeNoMatch:        "fingers do not match",
	CodeNotFound:       "no matching finger",
	CodeMergeFail:      "cannot combine character files",
	CodeBadSlot:        "slot beyond library capacity",
	CodeBadTemplate:    "invalid template",
	CodeUploadFail:     "template upload failed",
	CodeCannotReceive:  "cannot receive data packets",
	CodeImageUpload:    "image upload failed",
	CodeDeleteFail:     "delete failed",
	CodeClearFail:      "clear failed",
	CodeWrongPassword:  "wrong password",
	CodeNoImage:        "no valid image",
	CodeFlashError:     "flash write error",
	CodeBadRegister:    "invalid register",
	CodeLibraryFull:    "library full",
	CodeBadAddress:     "address error",
	CodeVerifyPassword: "password not verified",
	CodeUnsupported:    "unsupported command",
}

// String returns the code's meaning and its hex value.
func (c Code) String() string {
	if s, ok := codeText[c]; ok {
		return fmt.Sprintf("%s (0x%02X)", s, byte(c))
	}
	return fmt.Sprintf("unknown code 0x%02X", byte(c))
}

// CodeError is a command the module answered with a non-OK confirmation
// code: a remote error, distinct from timeouts and corrupt packets. It
// unwraps to the hal error of its class (hal.ErrRejected, hal.ErrFull,
// hal.ErrUnsupported or hal.ErrFault) so callers can use errors.Is.
type CodeError struct {
	// Instr is the instruction the module refused.
	Instr byte
	// Code is its confirmation code.
	Code Code
}

// Error implements error.
func (e *CodeError) Error() string {
	return fmt.Sprintf("module answered instruction 0x%02X with %v", e.Instr, e.Code)
}

// Unwrap returns the hal error class of the code.
func (e *CodeError) Unwrap() error {
	switch e.Code {
	case CodeBadTemplate, CodeCannotReceive, CodeImageMessy, CodeFewFeatures, CodeBadSlot:
		return hal.ErrRejected
	case CodeLibraryFull:
		return hal.ErrFull
	case CodeUnsupported:
		return hal.ErrUnsupported
	}
	return hal.ErrFault
}
