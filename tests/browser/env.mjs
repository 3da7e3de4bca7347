// The browser scripts' settings come from the environment (the Rust tests and benches set them).

/** The variable `k`, else `d`; an error naming it when neither is there. */
export const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) throw new Error(`set ${k}`);
  return v;
};
