"""One identifier (一个号码): the people, organisations and departments every module refers to."""
