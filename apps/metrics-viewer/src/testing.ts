// `@baka/metrics-viewer/testing`: what the viewer's own tests and the bench (bench/viewer.ts) use
// to drive it: headless Chromium (playwright-core, a devDependency) and synthetic databases.
export { CHROMIUM_ARGS, CHROMIUM_PATH, launchChromium } from './chromium';
export {
  type FixtureRun,
  syntheticLoss,
  writeLargeRun,
  writeMetricRows,
  writeThreeRunFixture,
} from './fixture-database';
