/** A short, human name for a browser from its user agent ("Chrome on Linux"). */
export function deviceLabel(userAgent: string | null | undefined): string {
  if (!userAgent) return 'Unknown device';
  const browser = /Edg\//.test(userAgent)
    ? 'Edge'
    : /Firefox\//.test(userAgent)
      ? 'Firefox'
      : /Chrom(e|ium)\//.test(userAgent)
        ? 'Chrome'
        : /Safari\//.test(userAgent)
          ? 'Safari'
          : /node|undici/i.test(userAgent)
            ? 'Script'
            : 'Browser';
  const os = /Android/.test(userAgent)
    ? 'Android'
    : /iPhone|iPad/.test(userAgent)
      ? 'iOS'
      : /Mac OS X/.test(userAgent)
        ? 'macOS'
        : /Windows/.test(userAgent)
          ? 'Windows'
          : /Linux/.test(userAgent)
            ? 'Linux'
            : '';
  return os ? `${browser} on ${os}` : browser;
}

/**
 * This browser's device: a random id kept in localStorage (so "this device" is recognisable in the
 * profile's metadata) and a readable label.
 */
export function thisDevice(): { id: string; label: string } {
  let id = '';
  try {
    id = localStorage.getItem('holiday-sale:device') ?? '';
    if (!id) {
      id = crypto.randomUUID().slice(0, 8);
      localStorage.setItem('holiday-sale:device', id);
    }
  } catch {
    id = 'private';
  }
  return { id, label: `${deviceLabel(navigator.userAgent)} · ${id.slice(0, 4)}` };
}
