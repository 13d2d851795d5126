/**
 * One integer consensus parameter read as C tor reads it
 * (`networkstatus_get_param`, dir-spec §3.4.1 "params"): absent, not an
 * integer, or outside [min, max] gives the caller's default.
 */
export function boundedParam(
  params: Record<string, number>,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const v = params[name];
  return v !== undefined && Number.isInteger(v) && v >= min && v <= max ? v : fallback;
}
