"""消息中心: one inbox per person (residents and staff alike), the unread count in the header, and
an SMS copy for those who asked for one, sent from the outbox after the cause commits."""
