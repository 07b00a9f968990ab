#!/usr/bin/env perl
# check-links.pl HTMLDIR: every href and src in the generated site must resolve: a relative link to
# a file that exists (inside the site, or in the source tree for links to examples and tests), and
# a #fragment to an id or name in that file. Links with a scheme (https:, mailto:, javascript:) are
# not followed. Prints each broken link and exits non-zero if there is one.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Find;

my $root = shift or die "usage: check-links.pl HTMLDIR\n";
my (@pages, %ids);
find(sub { push @pages, $File::Find::name if /\.html$/ }, $root);

sub ids_of {
    my ($file) = @_;
    return $ids{$file} if $ids{$file};
    my %set;
    if ($file =~ /\.html$/ && open my $fh, '<', $file) {
        local $/;
        my $html = <$fh>;
        $set{$1} = 1 while $html =~ /\b(?:id|name)\s*=\s*"([^"]*)"/g;
    }
    return $ids{$file} = \%set;
}

my ($links, $bad) = (0, 0);
for my $page (sort @pages) {
    open my $fh, '<', $page or die "check-links: cannot read $page: $!\n";
    local $/;
    my $html = <$fh>;
    close $fh;
    while ($html =~ /\b(href|src)\s*=\s*"([^"]*)"/g) {
        my $url = $2;
        next if $url =~ m{^[a-zA-Z][a-zA-Z0-9+.-]*:} || $url eq '' || $url eq '#';
        $links++;
        my ($path, $frag) = split /#/, $url, 2;
        $path =~ s/\?.*//;
        $path =~ s/%([0-9A-Fa-f]{2})/chr(hex $1)/ge;
        my $target = $path eq '' ? $page : dirname($page) . "/$path";
        if (!-e $target) {
            print "check-links: $page: $url: no such file\n";
            $bad++;
        } elsif (defined $frag && length $frag && $target =~ /\.html$/ && !ids_of($target)->{$frag}) {
            print "check-links: $page: $url: no anchor \"$frag\" there\n";
            $bad++;
        }
    }
}
printf "check-links: %d links in %d pages, %d broken\n", $links, scalar @pages, $bad;
exit($bad ? 1 : 0);
