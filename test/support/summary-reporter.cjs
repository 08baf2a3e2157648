// Prints the one closing line CI reads: "tests: N passed, M failed".
// With SUMMARY_LABEL set (.ci/run runs the suite once per Node version), the line says which run it
// was ("tests on node v24.21.0: ..."), so that only the sum .ci/run prints last reads "tests: ...".
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    const label = process.env.SUMMARY_LABEL ? ` ${process.env.SUMMARY_LABEL}` : '';
    process.stdout.write(`\ntests${label}: ${results.numPassedTests} passed, ${failed} failed\n`);
  }
}
module.exports = SummaryReporter;
