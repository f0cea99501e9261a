const name = process.argv[2]!;
const fn = process.argv[3]!;
const seed = Number(process.argv[4] ?? 1);
const mod = await import(`../src/shared/sync/testing/adversaries/${name}.ts`);
const t = performance.now();
console.log(name, seed, JSON.stringify(await mod[fn](seed)), Math.round(performance.now() - t), 'ms');
