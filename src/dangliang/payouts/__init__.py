"""Payout runs and their documents: a run's results at a log position, the adjustments for
periods already paid with their causes, comparison and replay; statements (支付单) and payslips
(工资条)."""
