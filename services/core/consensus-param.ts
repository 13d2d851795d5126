/**
 * One integer consensus parameter read as C tor reads it
 * (`networkstatus_get_param`, dir-spec §3.4.1 "params"): absent gives the
 * caller's default; a value outside [min, max] is clamped to the nearer
 * bound (C tor logs "capping to" and uses the bound). A value that is not an
 * integer cannot come from Tor's format; from our JSON documents it gives
 * the default.
 */
export function boundedParam(
  params: Readonly<Record<string, number>>,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const v = params[name];
  if (v === undefined || !Number.isInteger(v)) return fallback;
  return Math.min(max, Math.max(min, v));
}
