/**
 * A quorum by group ("two of finance and one of cfo") as a matching: each requirement has `count`
 * seats, each seat is taken by a different person among those who count toward it, and one person
 * takes one seat only (someone in both finance and cfo counts once). `seatsFilled` is the largest
 * number of seats the given people can fill (a maximum bipartite matching, augmenting paths: a few
 * dozen people at most). It answers both questions: can this quorum ever be met (everyone who may
 * approve), and is it met now (everyone who approved). Pure; imports nothing.
 */

export interface QuorumRequirement {
  readonly approvers: readonly string[];
  readonly count: number;
}

/** How many seats of the requirements `people` can fill, each person taking at most one. */
export function seatsFilled(requirements: readonly QuorumRequirement[], people: readonly string[]): number {
  const present = new Set(people);
  const seats = requirements.flatMap((r) => Array.from({ length: r.count }, () => r.approvers.filter((p) => present.has(p))));
  const holder = new Map<string, number>(); // person → seat
  const tryPlace = (seat: number, seen: Set<string>): boolean => {
    for (const p of seats[seat] ?? []) {
      if (seen.has(p)) continue;
      seen.add(p);
      const other = holder.get(p);
      if (other === undefined || tryPlace(other, seen)) {
        holder.set(p, seat);
        return true;
      }
    }
    return false;
  };
  let filled = 0;
  for (let s = 0; s < seats.length; s++) if (tryPlace(s, new Set())) filled++;
  return filled;
}

/** The seats in all: the approvals the quorum needs. */
export function seatCount(requirements: readonly QuorumRequirement[]): number {
  return requirements.reduce((n, r) => n + r.count, 0);
}
