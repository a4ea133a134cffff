// Package card drives serial card readers: it finds frames in the bytes a
// reader pushes, turns the identifier into the server's card_number string
// with a configurable Format, and suppresses the repeats a reader sends while
// a card stays in the field.
//
// Three wire protocols are supported, selected by Config.Driver (after the
// Seeed RDM6300 datasheet, the Gwiot 7941 module documents, and the
// manuals of Wiegand-to-serial converters):
//
//   - "rdm6300": STX, 10 ASCII-hex characters (version byte + 32-bit tag),
//     2 ASCII-hex characters of XOR checksum, ETX; 14 bytes, 9600 8N1.
//   - "gwiot7941": binary push frames 02 LEN TYPE UID… BCC 03, LEN being the
//     whole frame's length and BCC the XOR of LEN through the last UID byte.
//   - "line": a card number as text (decimal or hex digits) ended by CR, LF
//     or CR LF, as Wiegand-to-serial converters and many readers send.
//
// The codecs (DecodeRDM6300, DecodeGwiot7941, Line.Decode, the Append
// encoders) are pure functions over bytes; Reader moves bytes from a
// serialport.Port through them.
//
// Import rule: card imports hal and hal/serialport only; never agent, store
// or protocol.
package card
