// True once `on` has held for `ms`: a progress bar for a read that the store answers at once would only
// flicker while scrolling.
import { useEffect, useState } from 'react';

export function useDelayed(on: boolean, ms: number): boolean {
  const [late, setLate] = useState(false);
  useEffect(() => {
    if (!on) return setLate(false);
    const t = setTimeout(() => setLate(true), ms);
    return () => clearTimeout(t);
  }, [on, ms]);
  return on && late;
}
