"""The outbox: effects that leave the transaction (archives, messages, PDFs) are written as rows
in the same transaction as the change that causes them, and run after it commits."""
