/**
 * An HTTP/1.1 chunked-transfer decoder fed with socket buffers as they come. `onData` gets each payload
 * slice (a view into the fed buffer, not a copy); `onEnd` is called once at the last chunk (trailers,
 * which llama-server does not send, are ignored). Throws on framing that is not chunked encoding.
 */
export function chunkedDecoder(onData: (payload: Buffer) => void, onEnd: () => void): (buffer: Buffer) => void {
  let remaining = -1; // payload bytes left in the current chunk; -1 while reading a size line
  let sizeLine = '';
  let skip = 0; // the CRLF after a chunk's payload
  let ended = false;
  return (buffer) => {
    let i = 0;
    while (i < buffer.length && !ended) {
      if (skip > 0) {
        const n = Math.min(skip, buffer.length - i);
        skip -= n;
        i += n;
      } else if (remaining < 0) {
        const nl = buffer.indexOf(10, i);
        sizeLine += buffer.toString('latin1', i, nl < 0 ? buffer.length : nl);
        if (sizeLine.length > 1024) throw new Error('invalid chunked encoding: size line too long');
        if (nl < 0) return;
        i = nl + 1;
        const hex = sizeLine.split(';', 1)[0]!.trim();
        sizeLine = '';
        if (!/^[0-9a-fA-F]{1,8}$/.test(hex))
          throw new Error(`invalid chunked encoding: chunk size "${hex.slice(0, 20)}"`);
        remaining = parseInt(hex, 16);
        if (remaining === 0) {
          ended = true;
          onEnd();
        }
      } else {
        const n = Math.min(remaining, buffer.length - i);
        onData(buffer.subarray(i, i + n));
        i += n;
        remaining -= n;
        if (remaining === 0) {
          remaining = -1;
          skip = 2;
        }
      }
    }
  };
}
